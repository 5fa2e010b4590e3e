"""The tracking examples from the reference articles: experiments, params, metrics, text, images."""

import tempfile
from pathlib import Path

import numpy as np

import mlreg

experiment_name = "seed-examples"
if mlreg.get_experiment_by_name(experiment_name) is None:
    mlreg.create_experiment(experiment_name)
mlreg.set_experiment(experiment_name)

np_img = (np.random.uniform(size=[32, 32, 3]) * 255).astype(np.uint8)

with mlreg.start_run() as run:
    mlreg.set_tag("your Keys", "your tags")
    mlreg.log_param("lambda", 0.122)
    mlreg.log_metric("f1", 0.6)
    mlreg.log_text("this is a output from NLP model", "test.txt")
    mlreg.log_text(
        'this is a output from <div style="font-size:40px">NLP</div> model', "custom.html"
    )
    mlreg.log_image(np_img, "what.png")  # input np array
    for i in range(30):
        mlreg.log_metric("loss", i / 30, step=i)

batch_size, learning_rate, epochs = 32, 0.001, 5
train_loss, train_acc, val_loss, val_acc = 0.31, 0.9, 0.35, 0.88
with tempfile.TemporaryDirectory() as model_dir, mlreg.start_run(run_name="versioning"):
    (Path(model_dir) / "weights.txt").write_text("pretend weights")
    mlreg.log_param("batch_size", batch_size)
    mlreg.log_param("learning_rate", learning_rate)
    mlreg.log_param("epochs", epochs)
    mlreg.log_metric("train_loss", train_loss)
    mlreg.log_metric("train_accuracy", train_acc)
    mlreg.log_metric("val_loss", val_loss)
    mlreg.log_metric("val_accuracy", val_acc)
    mlreg.log_artifacts(model_dir)

for r in mlreg.search_runs(order_by=["metrics.val_loss ASC"], output_format="list"):
    print(
        r.info.run_name,
        r.data.metrics.get("val_loss"),
        sorted(Path(r.info.artifact_uri).iterdir())[:3],
    )
