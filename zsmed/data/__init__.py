from zsmed.data.folders import ClassFolder, LabeledItem, load_class_folders

__all__ = ["ClassFolder", "LabeledItem", "load_class_folders"]
