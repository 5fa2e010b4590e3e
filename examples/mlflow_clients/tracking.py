"""The reference articles' tracking examples, as written for MLflow, with only the tracking URI
changed: point it at mlreg server (``MLFLOW_TRACKING_URI=http://host:5000``)."""

import os
import tempfile

import mlflow
import numpy as np

mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])  # was "http://mlflow_server_ip:port"

experiment_name = "seed-examples"
if mlflow.get_experiment_by_name(experiment_name) is None:
    mlflow.create_experiment(experiment_name)
mlflow.set_experiment(experiment_name)

np_img = (np.random.uniform(size=[32, 32, 3]) * 255).astype(np.uint8)

with mlflow.start_run() as run:
    mlflow.set_tag("your Keys", "your tags")
    mlflow.log_param("lambda", 0.122)
    mlflow.log_metric("f1", 0.6)
    mlflow.log_text("this is a output from NLP model", "test.txt")
    mlflow.log_text(
        'this is a output from <div style="font-size:40px">NLP</div> model', "custom.html"
    )
    mlflow.log_image(np_img, "what.png")  # imput np array
    for i in range(30):
        mlflow.log_metric("loss", i / 30, step=i)

# Versioning a model by hand: params, metrics and the files of a model directory.
batch_size, learning_rate, epochs = 32, 0.001, 5
train_loss, train_acc, val_loss, val_acc = 0.31, 0.9, 0.35, 0.88
run_name = "versioning"
with tempfile.TemporaryDirectory() as model_dir:
    with open(os.path.join(model_dir, "weights.txt"), "w") as f:
        f.write("0.1 0.2 0.3")
    with mlflow.start_run(run_name=run_name):
        mlflow.log_param("batch_size", batch_size)
        mlflow.log_param("learning_rate", learning_rate)
        mlflow.log_param("epochs", epochs)
        mlflow.log_metric("train_loss", train_loss)
        mlflow.log_metric("train_accuracy", train_acc)
        mlflow.log_metric("val_loss", val_loss)
        mlflow.log_metric("val_accuracy", val_acc)
        mlflow.log_artifacts(model_dir)

print("run", run.info.run_id, "in experiment", run.info.experiment_id)
print(
    "versioning",
    mlflow.search_runs(filter_string="params.batch_size = '32'")["metrics.val_loss"][0],
)
