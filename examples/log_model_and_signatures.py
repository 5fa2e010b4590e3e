"""The guide's model-saving and signature examples."""

import numpy as np
import tensorflow as tf
from tensorflow import keras

import mlreg
import mlreg.tensorflow
from mlreg.models import ModelSignature, Schema, TensorSpec, infer_signature

# Define model
model = keras.Sequential(
    [
        keras.Input([28, 28, 3]),
        keras.layers.Conv2D(8, 2),
        keras.layers.MaxPool2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(2),
        keras.layers.Softmax(),
    ]
)

with mlreg.start_run():
    # Log the model to mlreg
    model_info = mlreg.tensorflow.log_model(model, name="model")

# Later, load the model for inference
loaded_model = mlreg.tensorflow.load_model(model_info.model_uri)
predictions = loaded_model.predict(tf.random.uniform([1, 28, 28, 3]))
print("native predictions", predictions.shape)

# Sample input data
sample_input = np.random.uniform(size=[2, 28, 28, 3])

# Get predictions
sample_output = model.predict(sample_input)

# Infer signature from data
signature = infer_signature(sample_input, sample_output)

with mlreg.start_run():
    # Log model with inferred signature
    model_info = mlreg.tensorflow.log_model(model, name="model", signature=signature)
print("inferred", model_info.metadata.signature.to_dict()["inputs"])

# Define input schema
input_schema = Schema(
    [
        TensorSpec(np.dtype(np.float32), (-1, 28, 28, 3), "input"),
    ]
)

# Create signature with input schema
signature = ModelSignature(inputs=input_schema)

with mlreg.start_run():
    # Log model with signature
    model_info = mlreg.tensorflow.log_model(model, name="model", signature=signature)

pyfunc_model = mlreg.pyfunc.load_model(model_info.model_uri)
print("manual", pyfunc_model.predict({"input": np.random.uniform(size=[4, 28, 28, 3])}).shape)
