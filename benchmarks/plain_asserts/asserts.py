"""The exercises' test cells as an instructor writes them without the kit: plain asserts.

benchmarks/nbgrader_vs_plain.py puts these in place of the kit's `assert_section` calls (same
grade ids, same points) to time `nbgrader autograde` and `nbgrader validate` without the kit.
Each one checks roughly what the kit's visible checks check, in the student's kernel.
"""

TEST_CELLS = {
    "device": """\
assert device == ("cuda" if torch.cuda.is_available() else "cpu"), "device is not set right"
""",
    "data": """\
assert weight == 0.3 and bias == 0.9, "weight and bias should be 0.3 and 0.9"
assert X.shape == (100, 1), f"X has shape {tuple(X.shape)}, expected (100, 1)"
assert torch.allclose(y, weight * X + bias), "y is not weight * X + bias"
""",
    "split": """\
assert train_split == 80 and isinstance(train_split, int), "train_split should be the int 80"
assert len(X_train) == len(y_train) == 80, "80 training samples expected"
assert len(X_test) == len(y_test) == 20, "20 test samples expected"
assert torch.equal(X_train.cpu(), X[:80].cpu()) and torch.equal(X_test.cpu(), X[80:].cpu())
""",
    "model": """\
assert isinstance(model_1, nn.Module), "model_1 should be an nn.Module"
parameters = dict(model_1.named_parameters())
assert set(parameters) == {"weight", "bias"}, f"parameters: {sorted(parameters)}"
assert all(p.requires_grad and p.shape == (1,) for p in parameters.values())
assert all(p.device.type == device for p in parameters.values()), "model_1 is not on device"
""",
    "loss_optimizer": """\
assert isinstance(loss_fn, nn.L1Loss), "loss_fn should be nn.L1Loss()"
assert isinstance(optimizer, torch.optim.SGD), "optimizer should be torch.optim.SGD"
assert optimizer.param_groups[0]["lr"] == 0.01, "the learning rate should be 0.01"
""",
    "training_loop": """\
assert epochs == 300, "train for 300 epochs"
with torch.inference_mode():
    final_loss = loss_fn(model_1(X_test.to(device)), y_test.to(device)).item()
assert final_loss < 0.05, f"the test loss is {final_loss:.3f} after training"
""",
    "predictions": """\
assert y_preds.shape == (20, 1), f"y_preds has shape {tuple(y_preds.shape)}"
assert not y_preds.requires_grad, "make the predictions inside torch.inference_mode()"
with torch.inference_mode():
    assert torch.allclose(y_preds, model_1(X_test.to(device)))
""",
    "save_model": """\
assert MODEL_SAVE_PATH.is_file(), f"nothing saved at {MODEL_SAVE_PATH}"
state = torch.load(MODEL_SAVE_PATH)
assert isinstance(state, dict) and set(state) == {"weight", "bias"}, "save the state_dict"
""",
    "load_model": """\
assert isinstance(loaded_model, LinearRegressionModel), "loaded_model is not a new instance"
assert torch.equal(loaded_model_preds, y_preds), "the loaded model predicts differently"
""",
}
