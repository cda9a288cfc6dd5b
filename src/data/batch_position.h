// Where a run stands in its stream of batches: what a checkpoint records so
// that resume continues with the very next batch.
#pragma once
#include <cstdint>

namespace aiayn {

struct BatchPosition {
  int64_t epoch = 0;
  int64_t index = 0;  // next batch within the epoch
};

}  // namespace aiayn
