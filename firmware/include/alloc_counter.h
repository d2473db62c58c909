// Counts heap allocations, so the harness can show forward() allocates nothing. The linker wraps
// malloc/calloc/realloc/free (-Wl,--wrap=...) and operator new/delete are replaced to count too.
#pragma once
#include <cstddef>

namespace alloc_counter {

struct Counts {
    std::size_t allocations = 0;
    std::size_t bytes = 0;
};

Counts now();

}  // namespace alloc_counter
