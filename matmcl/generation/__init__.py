"""Conditional structure generation (docs/generation.md): a diffusion prior maps a condition embedding to a structure
(SGPT image) embedding, a diffusers UNet decoder renders SEM patches from it; FID/KID and measured fiber features
judge the generated patches against the real ones."""
