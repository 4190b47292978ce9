"""SEM frame processing: patching and histogram matching."""
