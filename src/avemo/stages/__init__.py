"""The stages wing: one module per DVC stage (named as in dvc.yaml and as its `avemo` verb), plus commands.

Each module tells its method in `run(args, params)` over the shared frame (frame.py); the libraries
below know nothing of DVC, MLflow runs or resume folders.
"""
