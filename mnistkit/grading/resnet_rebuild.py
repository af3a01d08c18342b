"""a3's ResNet learner rebuilt with torch and torchvision only, for the hidden tests.

``resnet_learner`` (a3) builds a fastai ``vision_learner``; the grader compares a student's
model with ``resnet_model`` weight for weight, without importing fastai (8-9 CPU-seconds a
notebook). tests/test_reference_a3_training_loop.py checks that it computes what fastai's model
computes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConcatPool(nn.Module):
    """fastai's AdaptiveConcatPool2d: max pooling and average pooling side by side."""

    def forward(self, x):
        return torch.cat([F.adaptive_max_pool2d(x, 1), F.adaptive_avg_pool2d(x, 1)], 1)


def resnet_model(n_out):
    """The ResNet-18 body (torchvision's network without its pooling and last layer) and
    fastai's default head."""
    from torchvision.models import resnet18
    body = nn.Sequential(*list(resnet18(weights=None).children())[:-2])
    head = nn.Sequential(ConcatPool(), nn.Flatten(),
                         nn.BatchNorm1d(1024), nn.Dropout(0.25), nn.Linear(1024, 512, bias=False),
                         nn.ReLU(inplace=True),
                         nn.BatchNorm1d(512), nn.Dropout(0.5), nn.Linear(512, n_out, bias=False))
    return nn.Sequential(body, head)
