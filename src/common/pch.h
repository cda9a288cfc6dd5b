// Precompiled header: LibTorch's headers take most of the compile time.
#pragma once
#include <torch/torch.h>
