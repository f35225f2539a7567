"""DRM (drivers/gpu/drm/): the GPU SVM layers drm_pagemap and drm_gpusvm."""
