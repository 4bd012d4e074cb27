"""avemo: audio-visual emotion recognition on IEMOCAP, as a tracked, versioned pipeline."""

import os

# Offline by default: no usage telemetry from the tools we drive (a user may override); no MLflow download
# bars before a command's table or in a stage's log.
for _key, _value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
}.items():
    os.environ.setdefault(_key, _value)

__version__ = "0.1.0"
