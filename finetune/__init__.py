"""The training pipeline: versioned datasets → LoRA/QLoRA SFT + DPO → tracker → registry.

`python -m finetune dataset build --author NAME`  instruct (+ preference) dataset versions
`python -m finetune train --author NAME`          LoRA SFT (QLoRA on CUDA), or --method dpo
`python -m finetune registry list|show|promote|rollback`
`python -m finetune watch [--once]`               new data → train → gate → promote
Modules: datasets, generator, train, dpo, tracking (MLflow), registry_views (list, show,
rollback), export, cli. Promotion and the watch loop chain training with the evals gate:
evals/promotion.py, evals/watch.py.
"""
