"""The catalogue of known mistakes: a stable id and a kind next step for each (`ptgrade hints`)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Hint:
    id: str
    text: str


_CATALOGUE: tuple[Hint, ...] = (
    # Whole notebook and cells
    Hint(
        "cell.missing",
        "This graded cell is missing from the notebook. Restore it from the "
        "released notebook (or ask your instructor) and put your code back in.",
    ),
    Hint(
        "cell.not_code",
        "Turn the cell back into a code cell (in Jupyter: select it, press Esc, then Y; or "
        "Cell > Cell Type > Code) and run the notebook again.",
    ),
    Hint(
        "cell.raised",
        "Your cell stopped with an error. Read the last line of the error, fix "
        "that line, and run the notebook again from the top (Kernel > Restart & Run All).",
    ),
    Hint(
        "cell.misspelled",
        "A name is misspelled: use the one Python suggests in the error (names are "
        "case-sensitive: `nn.Parameter`, `torch.optim.SGD`, `unsqueeze`).",
    ),
    Hint(
        "cell.context_not_called",
        "Call the context manager in the `with` line, brackets included: "
        "`with torch.inference_mode():` (or `with torch.no_grad():`).",
    ),
    Hint(
        "cell.incomplete",
        "Python reached the end of the cell in the middle of a statement: a block "
        "(`with ...:`, `for ...:`, `if ...:`) with no indented line under it, or a bracket "
        "left open near the end. Finish it (indent the lines that belong inside the block).",
    ),
    Hint(
        "cell.input",
        "The grader runs your notebook with no one at the keyboard: write the value itself "
        "instead of asking for it with `input(...)`.",
    ),
    Hint(
        "cell.str_concat",
        "`+` joins strings only: print numbers and tensors with text through an f-string, "
        '`print(f"Epoch: {epoch} | Train loss: {loss:.3f}")`.',
    ),
    Hint(
        "cell.list_times_tensor",
        "A Python list times a tensor (`[0.3] * X`) asks Python to repeat the list, which "
        "fails: use a plain number (`weight = 0.3`) or a tensor (`torch.tensor([0.3])`).",
    ),
    Hint(
        "cell.float_count",
        "A count must be a whole number, an int: write `epochs = 300`, not `3e2`, `300.0` or "
        '`"300"` (or wrap it in `int(...)`).',
    ),
    Hint(
        "cell.colab_only",
        "`google.colab` exists only on Colab: move the Colab-only lines (`drive.mount`, "
        "`files.upload`) out of the graded cells, into a cell of their own.",
    ),
    Hint(
        "cell.module_missing",
        "The grader runs notebooks with torch, numpy, matplotlib and tqdm, all this chapter "
        "needs: do this step with torch (split with slicing, `X[:train_split]`, for example), "
        "or ask your instructor to add the package to the grader.",
    ),
    Hint(
        "cell.not_implemented",
        "This cell still raises NotImplementedError: replace "
        "`raise NotImplementedError()` with your code.",
    ),
    Hint(
        "cell.raise_left",
        "Delete the `raise NotImplementedError()` line the cell came with: it stops the cell "
        "with an error every time, before your code below it runs.",
    ),
    Hint(
        "cell.timeout",
        "This cell ran past its time limit. Look for a loop that never ends, "
        "or far more epochs than the exercise asks for.",
    ),
    Hint(
        "cell.syntax",
        "Python could not read this cell. Check brackets, colons and quotes on "
        "the line the error names.",
    ),
    Hint(
        "cell.indentation",
        "The body of an `if`, `for`, `with` or `def` must be indented one "
        "level (4 spaces) deeper than the line that ends with `:`.",
    ),
    Hint(
        "name.missing",
        "This section must define a name that is not defined after your cell "
        "ran. Check the spelling against the cell's instructions.",
    ),
    Hint(
        "name.none",
        "This name holds None, what a function without a `return` hands back (and what "
        "`print(...)` and `list.append(...)` return): assign the value itself.",
    ),
    Hint(
        "name.not_tensor",
        "This name must hold a tensor. Check the line that assigns it: a function or method "
        "that returns nothing gives None, and a list or a number needs `torch.tensor(...)`.",
    ),
    Hint(
        "cell.order",
        "Python runs a cell from the top: a line can only use the names made on the lines "
        "above it. Move the line that makes the name above the first line that uses it.",
    ),
    Hint(
        "cell.import_missing",
        "That name comes from a module: add the import the message names at the top of the "
        "cell (or of the notebook), then run the notebook from the top.",
    ),
    Hint(
        "cell.keyword",
        "A function got a keyword argument it does not have: check the name against the "
        "instructions (`torch.optim.SGD(params=..., lr=0.01)`, `torch.save(obj=..., f=...)`, "
        "`torch.load(f=...)`).",
    ),
    Hint(
        "name.undefined",
        "Your cell uses a name that is not defined yet: check its spelling against where you "
        "made it (names are case-sensitive), define it in this cell if the instructions ask "
        "for it here, and fix any earlier cell that stopped with an error before defining it; "
        "then run the notebook from the top (Kernel > Restart & Run All).",
    ),
    Hint(
        "file.missing",
        "There is no file at that path: check the path, and that the cell that writes the "
        "file comes first and ran.",
    ),
    Hint(
        "load.file_missing",
        "There is no saved model where you load from: the save section says why. Load from "
        "the same `MODEL_SAVE_PATH` you saved to.",
    ),
    # Device
    Hint("device.wrong", 'Set `device = "cuda" if torch.cuda.is_available() else "cpu"`.'),
    Hint(
        "device.fallback",
        'Fall back to the CPU where there is no GPU: `device = "cuda" if '
        'torch.cuda.is_available() else "cpu"`: every machine has a CPU, while "mps" and '
        "other devices exist only on some.",
    ),
    Hint(
        "device.unknown",
        'PyTorch knows no device by that name: use "cuda" for an NVIDIA GPU and "cpu" '
        'otherwise, `device = "cuda" if torch.cuda.is_available() else "cpu"`.',
    ),
    Hint(
        "device.mismatch",
        "The model and the data it meets must be on the same device: move the model once "
        "(`model.to(device)`) and every tensor you feed it or compare it with "
        "(`X = X.to(device)`). A GPU raises this error where a CPU stays silent.",
    ),
    Hint(
        "device.data_not_moved",
        "Move the data the model meets to its device, and keep the result: "
        "`X_test = X_test.to(device)`. A tensor's `.to(device)` returns a moved copy and "
        "leaves the tensor itself where it was.",
    ),
    Hint(
        "device.to_not_kept",
        "A tensor's `.to(device)` returns a moved copy and leaves the tensor where it was: "
        "keep the copy, `X_train = X_train.to(device)`. (A model's `.to(device)` moves the "
        "model itself, so `model_1.to(device)` alone is right.)",
    ),
    Hint(
        "model.plain_tensor_attr",
        "A tensor kept as a plain attribute of the model does not follow `model.to(device)`: "
        "make it an `nn.Parameter` if it should learn, or `self.register_buffer(...)` if not.",
    ),
    Hint(
        "device.hardcoded",
        'Don\'t write "cuda" or "cpu" by hand: ask '
        "`torch.cuda.is_available()` so the same code runs with or without a GPU.",
    ),
    # Data
    Hint("data.weight_bias", "This exercise's line uses `weight = 0.3` and `bias = 0.9`."),
    Hint(
        "data.stop_typo",
        "`torch.arange(start, end, step)`: the third argument is the step "
        "size, so pass `step` (there is no variable called `stop`).",
    ),
    Hint(
        "data.shape_1d",
        "Models expect one feature per row: add `.unsqueeze(dim=1)` to turn a "
        "shape `(N,)` tensor into `(N, 1)`.",
    ),
    Hint("data.too_few", "Make at least 100 points, for example `torch.arange(0, 1, 0.01)`."),
    Hint(
        "data.dtype",
        "Keep X as `torch.float32` (the default for `torch.arange` with a float "
        "step): the model's parameters are float32.",
    ),
    Hint("data.not_line", "`y` must be `weight * X + bias` for every row of X."),
    Hint(
        "data.requires_grad",
        "The data is fixed, not learned: make `weight = 0.3` and `bias = 0.9` plain numbers "
        "(no `requires_grad=True`), so `X` and `y` carry no gradient (and a loss against them "
        "has no graph of theirs to go back through twice).",
    ),
    Hint(
        "data.rows_mismatch",
        "Two tensors with different numbers of rows met in one operation: pair predictions "
        "with the labels of the same data (`model(X_train)` with `y_train`, `model(X_test)` "
        "with `y_test`).",
    ),
    # Split
    Hint(
        "split.float_index",
        "Slice indices must be whole numbers: use `train_split = int(0.8 * len(X))`.",
    ),
    Hint(
        "split.proportion",
        "Put 80 % of the rows in the training set and 20 % in the test "
        "set: `train_split = int(0.8 * len(X))`.",
    ),
    Hint(
        "split.overlap",
        "Every row must be in exactly one of the two sets: take "
        "`X[:train_split]` for training and `X[train_split:]` for testing.",
    ),
    Hint(
        "split.subset",
        "`random_split` and `TensorDataset` make datasets for a `DataLoader`, not tensors: "
        "slice the tensors themselves, `X_train, y_train = X[:train_split], y[:train_split]` "
        "and `X_test, y_test = X[train_split:], y[train_split:]`.",
    ),
    Hint(
        "split.columns",
        "Split the rows, not the columns: `X[:train_split]` takes the first rows, while "
        "`X[:, :train_split]` slices the second dimension (X has one column).",
    ),
    Hint(
        "split.misaligned",
        "Split X and y with the same index, so each `y` still belongs to "
        "its `X`: `X_train, y_train = X[:train_split], y[:train_split]`.",
    ),
    Hint(
        "split.order",
        "Keep the samples in order: the first `train_split` for training, "
        "`X_train, y_train = X[:train_split], y[:train_split]`, and the rest for testing, "
        "`X_test, y_test = X[train_split:], y[train_split:]`.",
    ),
    # Model
    Hint(
        "load.class_not_instance",
        "Create the new model by calling its class, with brackets: `loaded_model = "
        "LinearRegressionModel()`. The class itself holds no parameters to load into.",
    ),
    Hint(
        "model.forward_device",
        "`forward` makes a tensor of its own (`torch.randn(...)`, `torch.tensor(...)`, "
        "`nn.Linear(...)`), which lands on the CPU while the model and its input are on the "
        "GPU: make the model's numbers once, in `__init__`, as `nn.Parameter`s, so that "
        "`model_1.to(device)` moves them.",
    ),
    Hint(
        "model.class_not_instance",
        "Create the model by calling its class: `model_1 = LinearRegressionModel()`, with "
        "brackets; the class itself is not a model.",
    ),
    Hint(
        "model.not_module",
        "Your model class must inherit from `nn.Module`: "
        "`class LinearRegressionModel(nn.Module):`.",
    ),
    Hint(
        "model.no_super_init",
        "Call `super().__init__()` as the first line of `__init__`, "
        "before you assign any `nn.Parameter`.",
    ),
    Hint(
        "model.plain_tensor",
        "Wrap each learnable tensor in `nn.Parameter(...)`: a plain "
        "tensor attribute is not registered, so `parameters()` and the optimizer never see it.",
    ),
    Hint(
        "model.param_count",
        "The model needs exactly two learnable parameters: one weight and one bias.",
    ),
    Hint(
        "model.param_shape",
        "Make each parameter a single number: `torch.randn(1, ...)` gives shape `(1,)`.",
    ),
    Hint(
        "model.requires_grad",
        "Create the parameters with `requires_grad=True` (nn.Parameter "
        "does this unless you turn it off) so training can update them.",
    ),
    Hint("model.dtype", "Create the parameters with `dtype=torch.float` (float32)."),
    Hint(
        "model.forward_no_bias",
        "`forward` must return `self.weight * x + self.bias`: the bias is missing.",
    ),
    Hint(
        "model.forward_wrong",
        "`forward` must compute the line `weight * x + bias` with your "
        "two parameters and return it.",
    ),
    Hint(
        "model.init_typo",
        "Python runs the method named exactly `__init__` (two underscores on each side) when "
        "you create the model: rename the misspelled one, so your parameters are made.",
    ),
    Hint(
        "model.no_forward",
        "PyTorch runs the method named exactly `forward(self, x)` when you call the model: "
        "define it, and check its spelling.",
    ),
    Hint(
        "model.forward_global",
        "`forward` must compute with its own input and parameters, `return self.weight * x + "
        "self.bias`, not with values of the notebook such as `X` or the data cell's `weight`: "
        "then the model learns, and works on whatever it is given (training data, test data, "
        "on any device).",
    ),
    Hint(
        "model.attribute_name",
        "`forward` must use the attributes `__init__` made, under the same names: if "
        "`__init__` has `self.weights = nn.Parameter(...)`, `forward` reads `self.weights`.",
    ),
    Hint(
        "model.forward_no_return",
        "`forward` must `return` its result, `return self.weight * x + self.bias`: without "
        "`return`, calling the model gives None.",
    ),
    Hint(
        "model.parameter_arguments",
        "`nn.Parameter` takes the tensor and `requires_grad` only: give `dtype` to the tensor, "
        "`nn.Parameter(torch.randn(1, requires_grad=True, dtype=torch.float))`.",
    ),
    Hint(
        "model.init_arguments",
        "Your model's `__init__` takes no arguments: create the model with "
        "`LinearRegressionModel()`, then give it the saved values with "
        "`model.load_state_dict(torch.load(MODEL_SAVE_PATH))`.",
    ),
    Hint(
        "model.forward_shape",
        "`forward` must return a tensor with the same shape as its "
        "input: multiply element-wise (`*`), don't reduce or reshape.",
    ),
    Hint(
        "model.seed",
        "Call `torch.manual_seed(42)` in the same cell, right before you create "
        "the model, so its starting values are reproducible.",
    ),
    Hint(
        "model.init",
        "Make both parameters with `torch.randn(1, requires_grad=True, dtype=torch.float)` "
        "after `torch.manual_seed(42)`: the exercise's numbers (and its checks) start from "
        "those values.",
    ),
    Hint("model.not_on_device", "Move the model to the device: `model_1.to(device)`."),
    # Loss and optimizer
    Hint(
        "loss.torch_l1loss",
        "Loss functions live in `torch.nn`: write `nn.L1Loss()`, not `torch.L1Loss()`.",
    ),
    Hint("loss.not_l1", "This exercise uses the mean absolute error: `loss_fn = nn.L1Loss()`."),
    Hint(
        "loss.reduction",
        'Keep the loss\'s default reduction, the mean: `nn.L1Loss()`. With `reduction="sum"` '
        "the gradients grow with the number of samples, and lr=0.01 takes far larger steps.",
    ),
    Hint(
        "loss.class_not_instance",
        "Call the class to make the loss function: `loss_fn = nn.L1Loss()`, with brackets.",
    ),
    Hint(
        "optimizer.parameters_typo",
        "The method is `model.parameters()`: lower case, plural, with brackets.",
    ),
    Hint("optimizer.not_sgd", "Use stochastic gradient descent: `torch.optim.SGD(...)`."),
    Hint("optimizer.lr", "Use a learning rate of 0.01: `lr=0.01`."),
    Hint(
        "optimizer.not_plain",
        "Use plain SGD, without momentum or weight decay: "
        "`torch.optim.SGD(params=model.parameters(), lr=0.01)`.",
    ),
    Hint(
        "optimizer.other_params",
        "Give the optimizer exactly this model's parameters: `params=model_1.parameters()`.",
    ),
    # Training loop
    Hint(
        "training.epochs",
        "Run the training loop for the number of epochs the exercise asks "
        "for, with one `optimizer.step()` per epoch.",
    ),
    Hint(
        "training.no_forward",
        "Each epoch starts with a forward pass on the training data: `y_pred = model(X_train)`.",
    ),
    Hint(
        "training.forward_not_called",
        "Make the predictions by calling the model, `y_pred = model(X_train)`, not by "
        "writing its formula out by hand: the model's own `forward` is what you trained and "
        "will reload.",
    ),
    Hint(
        "training.not_train_mode",
        "Call `model.train()` at the start of every epoch: after a "
        "test pass the model is still in eval mode.",
    ),
    Hint(
        "training.test_data",
        "Train on the training data only (`X_train`, `y_train`); the "
        "test set is for measuring, never for learning.",
    ),
    Hint(
        "training.no_loss",
        "Compute the loss with your loss function each epoch: `loss = loss_fn(y_pred, y_train)`.",
    ),
    Hint(
        "training.no_graph",
        "The loss is not connected to the model's parameters, so `loss.backward()` has nothing "
        "to go back through: compute `y_pred = model(X_train)` with gradients on (outside "
        "`torch.inference_mode()` and `torch.no_grad()`) and without `.detach()`, `.item()` "
        "or `.numpy()` on the way to the loss. (Parameters made with `requires_grad=False` do "
        "this too: see the model section.)",
    ),
    Hint(
        "training.model_replaced",
        "Keep the model you trained: don't create it again after the loop (a new model "
        "starts from untrained parameters, and it is the one every later cell would use).",
    ),
    Hint(
        "training.optimizer_stale",
        "An optimizer updates the parameters it was given when it was made. Don't create "
        "`model_1` again in the training cell; if you must, create `optimizer` again right "
        "after it: `optimizer = torch.optim.SGD(params=model_1.parameters(), lr=0.01)`.",
    ),
    Hint(
        "training.graph_reused",
        "Each epoch needs a fresh forward pass: put `y_pred = model(X_train)` and "
        "`loss = loss_fn(y_pred, y_train)` inside the loop, so every `loss.backward()` has a "
        "graph of its own to go back through.",
    ),
    Hint(
        "training.loss_shapes",
        "Give the predictions and the labels the same shape before `loss_fn`: PyTorch "
        "broadcasts shapes (N,) and (N, 1) to (N, N), and the loss then averages the "
        "difference of every prediction with every label. Drop the `.squeeze()` (or squeeze "
        "both).",
    ),
    Hint(
        "training.no_zero_grad",
        "Call `optimizer.zero_grad()` every epoch before "
        "`loss.backward()`: gradients add up otherwise.",
    ),
    Hint(
        "training.zero_grad_after_backward",
        "`optimizer.zero_grad()` goes before "
        "`loss.backward()`: called after it, it wipes the gradients the step needs.",
    ),
    Hint("training.no_backward", "Call `loss.backward()` every epoch to compute the gradients."),
    Hint(
        "training.step_before_backward",
        "Call `optimizer.step()` after `loss.backward()`, "
        "so each step uses this epoch's gradients.",
    ),
    Hint("training.no_step", "Call `optimizer.step()` every epoch to update the parameters."),
    Hint(
        "training.wrong_update",
        "The parameters did not change the way one SGD step on this "
        "epoch's loss changes them. Keep the five steps in order: forward, loss, zero_grad, "
        "backward, step.",
    ),
    Hint(
        "training.loss_nan",
        "A loss of nan means the numbers broke: the mean over a tensor with no rows is nan "
        "(check the shapes of `X_train` and `y_train`), and a learning rate that is too high "
        "makes the parameters grow until they overflow.",
    ),
    Hint(
        "training.loss_not_decreasing",
        "The training loss should go down over the epochs. "
        "Check the five steps and the learning rate.",
    ),
    Hint(
        "training.wrong_labels",
        "Compute the training loss against `y_train`, the labels of the data the model learns "
        "from: `loss = loss_fn(y_pred, y_train)`.",
    ),
    Hint(
        "training.wrong_data",
        "Train on the training data: the forward pass is `model(X_train)` and the loss "
        "compares it with `y_train`.",
    ),
    Hint(
        "training.overwritten",
        "Leave the parameters as the last `optimizer.step()` left them: nothing after the "
        "loop should change the trained model.",
    ),
    Hint(
        "training.final_params",
        "Your final parameters differ from what these 300 (or 100) "
        "steps reach from your model's start. Check the five steps in each epoch.",
    ),
    Hint(
        "training.no_test_pass",
        "Test the model regularly: every 20 epochs (10 in the "
        "walkthrough), run it on `X_test` under `model.eval()` and `torch.inference_mode()`.",
    ),
    Hint(
        "training.test_grad",
        "Run the test pass inside `with torch.inference_mode():` (or "
        "`torch.no_grad()`) so no gradients are tracked.",
    ),
    Hint("training.test_not_eval", "Call `model.eval()` before the test pass."),
    Hint(
        "training.off_device",
        "Put the data on the same device as the model: "
        "`X_train = X_train.to(device)` (and y_train, X_test, y_test).",
    ),
    Hint(
        "training.loss_history",
        "Every 10 epochs append the epoch to `epoch_count` and the "
        "losses to `train_loss_values` and `test_loss_values` (as numbers, e.g. "
        "`loss.detach().numpy()`).",
    ),
    Hint(
        "training.test_loss_data",
        "Compute the test loss from the test pass: `test_pred = model_1(X_test)`, then "
        "`test_loss = loss_fn(test_pred, y_test)` (the training predictions and labels "
        "measure the training loss again).",
    ),
    # Predictions
    Hint(
        "predictions.inference_mode_typo",
        "The context manager is `torch.inference_mode()`: check the spelling.",
    ),
    Hint(
        "predictions.shape",
        "`y_preds` should have the same shape as `y_test`: call the model on all of `X_test`.",
    ),
    Hint(
        "predictions.reshaped",
        "Keep the model's output in the shape of `y_test`: drop the `.squeeze()` (or "
        "`.flatten()`, `.reshape(...)`) that changed it, or, if `forward` itself returns "
        "that shape, fix `forward`.",
    ),
    Hint(
        "predictions.requires_grad",
        "Make predictions inside `with torch.inference_mode():` "
        "(after `model.eval()`) so they carry no gradient.",
    ),
    Hint(
        "predictions.not_eval",
        "Call `model.eval()` before predicting: layers like dropout and batch norm behave "
        "differently in train mode, and the exercise asks for evaluation mode.",
    ),
    Hint(
        "predictions.not_model",
        "`y_preds` must be your trained model's output on `X_test`: `y_preds = model(X_test)`.",
    ),
    Hint(
        "predictions.model_replaced",
        "Predict with the model your loop trained: don't create the model again after "
        "training (a new one starts from untrained parameters).",
    ),
    Hint(
        "predictions.cpu",
        "Bring a tensor from the GPU to the CPU with `.cpu()` before handing it to numpy or "
        "matplotlib: `y_preds.cpu()`, `loss.detach().cpu().numpy()`.",
    ),
    # Save
    Hint(
        "save.method_saved",
        "Call `state_dict` with parentheses: `model.state_dict()` is the dictionary of tensors "
        "to save; `model.state_dict` is the method itself, and saving it pickles the whole model.",
    ),
    Hint(
        "save.path",
        'Save under the `models/` folder: `MODEL_SAVE_PATH = Path("models") / MODEL_NAME`.',
    ),
    Hint(
        "save.file_name",
        "Save under the file name the cell asks for, extension included "
        "(`MODEL_NAME` in the instructions, `.pth`): others look for that file.",
    ),
    Hint(
        "save.file_missing",
        "Nothing was saved at `MODEL_SAVE_PATH`: call "
        "`torch.save(obj=model.state_dict(), f=MODEL_SAVE_PATH)`.",
    ),
    Hint(
        "save.whole_model",
        "Save the `state_dict()`, not the whole model: "
        "`torch.save(obj=model.state_dict(), f=MODEL_SAVE_PATH)`.",
    ),
    Hint(
        "save.pickle_protocol",
        "Save with `torch.save`'s default pickle protocol: `torch.save(model.state_dict(), "
        "path)`. A file written with `pickle_protocol=4` or 5 does not load with "
        "`torch.load(..., weights_only=True)`, the default since PyTorch 2.6.",
    ),
    Hint(
        "save.no_folder",
        "Create the folder before saving into it: `MODEL_PATH.mkdir(parents=True, exist_ok=True)`.",
    ),
    Hint(
        "save.path_join",
        'Build the path with `pathlib`: `MODEL_PATH = Path("models")`, then join with `/`, '
        "`MODEL_SAVE_PATH = MODEL_PATH / MODEL_NAME` (a `Path` does not add to a string with "
        "`+`, and two strings do not join with `/`).",
    ),
    Hint(
        "save.to_folder",
        "`torch.save` needs a file name, not the folder: save to "
        "`MODEL_SAVE_PATH = MODEL_PATH / MODEL_NAME`.",
    ),
    Hint(
        "load.keys",
        "The state_dict you load must have the model's own keys: save `model.state_dict()` "
        "itself (not a dict around it), and load it into a model of the same class.",
    ),
    Hint("save.not_state_dict", "The saved file must hold the model's `state_dict()`."),
    Hint("save.not_trained", "Save after training, so the file holds the trained values."),
    Hint(
        "save.unsafe_file",
        "The saved file does not load with `weights_only=True`: save only "
        "`model.state_dict()`, nothing else.",
    ),
    # Load
    Hint(
        "load.chained",
        "`load_state_dict(...)` returns a report of matched keys, not the model: make the model "
        "first (`loaded_model = LinearRegressionModel()`), then call "
        "`loaded_model.load_state_dict(torch.load(f=MODEL_SAVE_PATH))` on its own line.",
    ),
    Hint(
        "load.state_dict_not_model",
        "`torch.load` gives back the saved state_dict (a dictionary of tensors), not a model: "
        "make a new `LinearRegressionModel()` and fill it with `load_state_dict(...)`.",
    ),
    Hint(
        "load.same_object",
        "Create a new model instance to load into: `loaded_model = LinearRegressionModel()`.",
    ),
    Hint("load.other_class", "Load into a new instance of the same class as your trained model."),
    Hint(
        "load.no_load_state_dict",
        "Fill the new model with `loaded_model.load_state_dict(torch.load(f=MODEL_SAVE_PATH))`.",
    ),
    Hint(
        "load.path_to_load_state_dict",
        "`load_state_dict` takes the dictionary, not the "
        "path: `loaded_model.load_state_dict(torch.load(f=MODEL_SAVE_PATH))`.",
    ),
    Hint(
        "load.not_from_file",
        "Load the state_dict from the file you saved "
        "(`torch.load(f=MODEL_SAVE_PATH)`), not from the trained model in memory.",
    ),
    Hint(
        "load.preds_mismatch",
        "The reloaded model's predictions on `X_test` must equal "
        "`y_preds` exactly: load the saved state_dict and predict in eval mode.",
    ),
    Hint(
        "load.preds_not_reloaded",
        "Make the predictions with the reloaded model itself: "
        "`loaded_model_preds = loaded_model(X_test)` inside `torch.inference_mode()`.",
    ),
    Hint("load.not_on_device", "Move the reloaded model to the device: `loaded_model.to(device)`."),
)

HINTS: dict[str, Hint] = {hint.id: hint for hint in _CATALOGUE}


def hint_text(hint_id: str | None, assignment=None) -> str:
    """A hint's text; for `assignment`, in its own names (the catalogue quotes the exercises
    notebook's `model_1`, `loaded_model` and `self.weight`; the walkthrough's are `model_0`,
    `loaded_model_0` and `self.weights`)."""
    if hint_id is None:
        return ""
    text = HINTS[hint_id].text
    if assignment is not None:
        names = {
            "model_1": assignment.model_name,
            "loaded_model": assignment.loaded_name,
            "self.weight": f"self.{assignment.weight_attr}",
        }
        for ours, theirs in names.items():
            text = re.sub(rf"(?<![\w.]){re.escape(ours)}\b", theirs, text)
    return text


# Errors students really hit, recognised from the exception they raise: (type, pattern, hint id).
_ERROR_PATTERNS: tuple[tuple[str, str, str], ...] = (
    ("NotImplementedError", r'missing the required "forward" function', "model.no_forward"),
    ("NotImplementedError", r"", "cell.not_implemented"),
    # `with torch.inference_mode:`, the class itself (Python < 3.11 says `__enter__`).
    ("TypeError", r"does not support the context manager protocol", "cell.context_not_called"),
    ("AttributeError", r"^__enter__$", "cell.context_not_called"),
    # `nn.Parameter(torch.randn(1), dtype=torch.float)`
    ("TypeError", r"Parameter.__new__\(\) got an unexpected keyword", "model.parameter_arguments"),
    ("TypeError", r"got an unexpected keyword argument", "cell.keyword"),
    # `LinearRegressionModel(torch.load(...))`
    (
        "TypeError",
        r"__init__\(\) takes 1 positional argument but \d+ were given",
        "model.init_arguments",
    ),
    # `y_pred = model(X_train)` before the loop: the second epoch's backward finds no graph.
    ("RuntimeError", r"backward through the graph a second time", "training.graph_reused"),
    (
        "RuntimeError",
        r"size of tensor a \(\d+\) must match the size of tensor b \(\d+\) at non-singleton "
        r"dimension 0",
        "data.rows_mismatch",
    ),
    ("RuntimeError", r"device type at start of device string", "device.unknown"),
    ("NameError", r"'stop' is not defined", "data.stop_typo"),
    ("AttributeError", r"module 'torch' has no attribute '\w*L1Loss'", "loss.torch_l1loss"),
    ("AttributeError", r"module 'torch' has no attribute '\w*Loss'", "loss.torch_l1loss"),
    (
        "AttributeError",
        r"has no attribute '(Parameters|parameter|Parameter|params)'",
        "optimizer.parameters_typo",
    ),
    # `loaded_model = Model().load_state_dict(...)`: the keys report, not the model.
    ("AttributeError", r"'_IncompatibleKeys' object has no attribute", "load.chained"),
    # `loaded_model = torch.load(...)`: the state_dict itself.
    (
        "AttributeError",
        r"'(collections\.)?OrderedDict' object has no attribute",
        "load.state_dict_not_model",
    ),
    # `LinearRegressionModel.to(device)`: the class's method, called with the device as self.
    ("AttributeError", r"object has no attribute '_apply'", "model.class_not_instance"),
    # A method called on the class itself: `LinearRegressionModel.load_state_dict(sd)` binds
    # the state_dict as `self` and misses its own argument.
    (
        "TypeError",
        r"Module\.\w+\(\) missing 1 required positional argument",
        "model.class_not_instance",
    ),
    # `SGD(params=model.parameters, ...)`: the method itself, without its brackets.
    ("TypeError", r"'method' object is not iterable", "optimizer.parameters_typo"),
    (
        "AttributeError",
        r"has no attribute '\w*(inference|interence|inferance)\w*'",
        "predictions.inference_mode_typo",
    ),
    (
        "AttributeError",
        r"cannot assign (parameter|module|buffer)s? before Module.__init__",
        "model.no_super_init",
    ),
    (
        "AttributeError",
        r"object has no attribute '_(parameters|buffers|modules)'",
        "model.no_super_init",
    ),
    ("TypeError", r"slice indices must be integers", "split.float_index"),
    (
        "TypeError",
        r"Expected state_dict to be dict-like, got <class '(str|pathlib\.\w+)'>",
        "load.path_to_load_state_dict",
    ),
    ("TypeError", r"Expected state_dict to be dict-like", "save.not_state_dict"),
    # A bound method (`model.state_dict` saved without its ()) pickles as getattr(model, name).
    ("UnpicklingError", r"GLOBAL getattr was not an allowed global", "save.method_saved"),
    ("UnpicklingError", r"Unsupported operand", "save.pickle_protocol"),
    ("UnpicklingError", r"Weights only load failed", "save.whole_model"),
    ("RuntimeError", r"does not require grad and does not have a grad_fn", "model.requires_grad"),
    ("ValueError", r"optimizer got an empty parameter list", "model.plain_tensor"),
    ("RuntimeError", r"Expected all tensors to be on the same device", "device.mismatch"),
    (
        "AttributeError",
        r"object has no attribute '(to|parameters|train|eval|state_dict|cuda)'",
        "model.not_module",
    ),
    ("TypeError", r"can't convert cuda.* device type tensor to numpy", "predictions.cpu"),
    ("RuntimeError", r"Torch not compiled with CUDA enabled", "device.hardcoded"),
    ("AssertionError", r"Torch not compiled with CUDA enabled", "device.hardcoded"),
    ("ModuleNotFoundError", r"No module named 'google", "cell.colab_only"),
    ("ModuleNotFoundError", r"No module named", "cell.module_missing"),
    ("FileNotFoundError", r"", "file.missing"),
    ("RuntimeError", r"Parent directory .* does not exist", "save.no_folder"),
    # `MODEL_PATH + "/" + MODEL_NAME`, or `"models" / MODEL_NAME`, or `"models".mkdir()`.
    ("TypeError", r"unsupported operand type\(s\) for \+: '\w*Path' and 'str'", "save.path_join"),
    ("TypeError", r"unsupported operand type\(s\) for /: 'str' and 'str'", "save.path_join"),
    ("AttributeError", r"'str' object has no attribute 'mkdir'", "save.path_join"),
    # `torch.save(..., f=MODEL_PATH)`: the folder itself.
    ("RuntimeError", r"open file failed.*Is a directory", "save.to_folder"),
    ("IsADirectoryError", r"", "save.to_folder"),
    ("TypeError", r"'(float|str)' object cannot be interpreted as an integer", "cell.float_count"),
    ("EOFError", r"EOF when reading a line", "cell.input"),
    ("TypeError", r"can only concatenate str \(not \"\w+\"\) to str", "cell.str_concat"),
    # `[0.3] * X`: Python's list repetition asks the tensor for an index.
    (
        "TypeError",
        r"only integer tensors of a single element can be converted to an index",
        "cell.list_times_tensor",
    ),
    ("RuntimeError", r"Error\(s\) in loading state_dict", "load.keys"),
    ("NameError", r"is not defined", "name.undefined"),
    # Any other attribute Python found a near spelling for (`nn.Paramter`, `optim.sgd`).
    ("AttributeError", r"has no attribute .*\. Did you mean: ", "cell.misspelled"),
    ("IndentationError", r"", "cell.indentation"),
    ("TabError", r"", "cell.indentation"),
    ("SyntaxError", r"^incomplete input", "cell.incomplete"),
    ("SyntaxError", r"", "cell.syntax"),
)


# torch's own words for some errors, which a beginner cannot act on (a list of twenty device
# types, advice to allowlist classes in `torch.load`): (type, pattern, the words shown
# instead, with the match's groups). The record keeps torch's message, which the hints match.
_PLAIN_ERRORS: tuple[tuple[str, str, str], ...] = (
    (
        "RuntimeError",
        r"device type at start of device string: (.*)$",
        '"{0}" is not a device PyTorch knows: write "cuda" for the GPU, or "cpu"',
    ),
    (
        "RuntimeError",
        r"^Invalid device string: '(.*)'$",
        '"{0}" is not a device PyTorch can read: write "cuda" (or "cuda:0") for the GPU, or "cpu"',
    ),
    (
        "RuntimeError",
        r"^Device string must not be empty",
        'The device is the empty string "": write "cuda" for the GPU, or "cpu"',
    ),
    (
        "UnpicklingError",
        r"^Weights only load failed.*Unsupported global: GLOBAL ([\w.]+)",
        "`torch.load` refused the file: it holds `{0}`, and `torch.load` reads only tensors "
        "(its default, `weights_only=True`)",
    ),
    (
        "UnpicklingError",
        r"^Weights only load failed.*Unsupported operand",
        "`torch.load` could not read the file with its default, `weights_only=True`: the file "
        "was not written the way `torch.save` writes by default",
    ),
    (
        "UnpicklingError",
        r"^Weights only load failed",
        "`torch.load` refused the file: it holds more than tensors, and `torch.load` reads "
        "only tensors (its default, `weights_only=True`)",
    ),
    (
        "RuntimeError",
        r"^Trying to backward through the graph a second time",
        "Trying to backward through the graph a second time: an earlier `backward()` already "
        "went back through (and freed) the graph this loss comes from",
    ),
)


def plain_error(ename: str, evalue: str) -> str:
    """An error's message as the student reads it: torch's own where it is short and says what
    to change, else the words of _PLAIN_ERRORS; on one line (a state_dict's missing keys come
    on lines of their own)."""
    for error_type, pattern, words in _PLAIN_ERRORS:
        found = re.search(pattern, evalue, re.S) if ename == error_type else None
        if found:
            return words.format(*found.groups())
    return " ".join(evalue.split())


def hint_for_error(ename: str, evalue: str) -> str:
    """The most specific hint for an exception a cell raised."""
    for error_type, pattern, hint_id in _ERROR_PATTERNS:
        if ename == error_type and re.search(pattern, evalue):
            return hint_id
    return "cell.raised"
