"""Cross-modal retrieval in SGPT's joint space (docs/retrieval.md).

- `index`: cosine top-k over a matrix of unit embeddings (one matrix product per query batch, `np.argpartition`).
- `embeddings`: film-level condition and structure embeddings of an SGPT model (also the CV hook of `evaluate`).
- `gallery`: the saved, versioned gallery index (`models/gallery/`) and `Retriever`, which encodes queries.
- `evaluation`: top-k accuracy and MRR on each CV fold's unseen test films against the similarity and random
  baselines, bootstrap CIs, the structure-aware feature distance and the latency benchmark.
"""
