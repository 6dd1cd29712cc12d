"""dermkd: train, distil, evaluate and ship small skin-lesion classifiers.

The flow is data -> models -> distill -> train -> evaluate -> report; each stage is a
subpackage of the same name.
"""

__version__ = "0.1.0"
