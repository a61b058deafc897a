"""The two assignments' contracts: sections (nbgrader grade_ids), the names each defines, and the numbers."""

from __future__ import annotations

from dataclasses import dataclass

from grader.contract import Assignment as Contract
from grader.contract import Section


@dataclass(frozen=True, kw_only=True)
class Assignment(Contract):
    """Chapter 01's contract: the generic one, with the line's numbers and the names."""

    weight: float  # the true line's slope
    bias: float  # ... and intercept
    data_step: float
    min_points: int
    epochs: int
    test_every: int
    lr: float
    model_name: str  # the trained model's variable name
    loaded_name: str  # the reloaded model's variable name
    loaded_preds_name: str
    weight_attr: str  # the reference model's slope parameter (`self.weight`, `self.weights`)
    loss_history: bool = False  # the walkthrough records epoch_count and loss lists
    save_name: str = ""  # the file name the save cell asks for (`MODEL_NAME`)
    # The walkthrough's split asks for the first `train_split` samples; the exercises' allows
    # a shuffled split too (its instructions say so).
    split_in_order: bool = False

    def hint_names(self) -> dict[str, str]:
        """hints.toml's placeholders in this notebook's names."""
        return {
            "model": self.model_name,
            "loaded_model": self.loaded_name,
            "weight": self.weight_attr,
        }


_SPLIT = Section(
    "split",
    "Split the data 80/20",
    ("X_train", "y_train", "X_test", "y_test"),
    "# Define `train_split`",
    asked=("train_split",),
)
_SAVE = Section(
    "save_model",
    "Save the state_dict",
    ("MODEL_SAVE_PATH",),
    '# Define `MODEL_PATH = Path("models")`',
    asked=("MODEL_PATH", "MODEL_NAME"),
)
_MODEL_MARKER = "# Define `class LinearRegressionModel(nn.Module)`"
_PREDICTIONS_MARKER = "# Define `y_preds`"
_LOSS = Section(
    "loss_optimizer", "Loss function and optimizer", ("loss_fn", "optimizer"), "# Define `loss_fn`"
)

EXERCISES = Assignment(
    id="01_pytorch_workflow_exercises",
    title="01 PyTorch Workflow: exercises",
    sections=(
        Section("device", "Device-agnostic code", ("device",), "# Define `device`"),
        Section(
            "data",
            "Make straight-line data",
            ("weight", "bias", "X", "y"),
            "# Define `weight = 0.3`",
        ),
        _SPLIT,
        Section("model", "Build the model", ("model_1",), _MODEL_MARKER),
        _LOSS,
        Section(
            "training_loop",
            "Training and testing loop",
            ("model_1", "epochs"),
            "# Define `epochs = 300`",
        ),
        Section("predictions", "Make predictions", ("y_preds", "model_1"), _PREDICTIONS_MARKER),
        _SAVE,
        Section(
            "load_model",
            "Load it into a new model",
            ("loaded_model", "loaded_model_preds"),
            "# Define `loaded_model`",
        ),
    ),
    weight=0.3,
    bias=0.9,
    data_step=0.01,
    min_points=100,
    epochs=300,
    test_every=20,
    lr=0.01,
    model_name="model_1",
    loaded_name="loaded_model",
    loaded_preds_name="loaded_model_preds",
    weight_attr="weight",
    save_name="01_pytorch_workflow_exercises_model_1.pth",
    default_points={
        "device": 1,
        "data": 2,
        "split": 2,
        "model": 3,
        "loss_optimizer": 2,
        "training_loop": 5,
        "predictions": 2,
        "save_model": 1,
        "load_model": 2,
    },
    device_agnostic=True,
)

WALKTHROUGH = Assignment(
    id="01_pytorch_workflow",
    title="01 PyTorch Workflow: the chapter walkthrough",
    sections=(
        _SPLIT,
        Section("model", "Build the model", ("model_0",), _MODEL_MARKER),
        _LOSS,
        Section(
            "training_loop",
            "Training and testing loop",
            ("model_0", "epochs", "epoch_count", "train_loss_values", "test_loss_values"),
            "# Define `epochs = 100`",
        ),
        Section("predictions", "Make predictions", ("y_preds", "model_0"), _PREDICTIONS_MARKER),
        _SAVE,
        Section(
            "load_model",
            "Load it into a new model",
            ("loaded_model_0", "loaded_model_preds"),
            "# Define `loaded_model_0`",
        ),
    ),
    weight=0.7,
    bias=0.3,
    data_step=0.02,
    min_points=50,
    epochs=100,
    test_every=10,
    lr=0.01,
    model_name="model_0",
    loaded_name="loaded_model_0",
    loaded_preds_name="loaded_model_preds",
    weight_attr="weights",
    save_name="01_pytorch_workflow_model_0.pth",
    split_in_order=True,
    default_points={
        "split": 2,
        "model": 3,
        "loss_optimizer": 2,
        "training_loop": 6,
        "predictions": 2,
        "save_model": 2,
        "load_model": 3,
    },
    loss_history=True,
)

ASSIGNMENTS = {a.id: a for a in (EXERCISES, WALKTHROUGH)}

# Names every section's checks may read, besides the section's own names.
DATA_NAMES = ("weight", "bias", "X", "y")
