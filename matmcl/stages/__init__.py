"""Pipeline stages: each reads its inputs from the workspace, writes its artifacts at fixed paths and returns
metadata. The CLI (and so DVC), the Dagster assets and the main job all call these functions."""
