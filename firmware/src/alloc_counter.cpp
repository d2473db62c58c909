#include "alloc_counter.h"

#include <cstdlib>
#include <new>

namespace {
alloc_counter::Counts counts;

void note(std::size_t bytes) {
    ++counts.allocations;
    counts.bytes += bytes;
}
}  // namespace

alloc_counter::Counts alloc_counter::now() { return counts; }

extern "C" {
void* __real_malloc(std::size_t);
void* __real_calloc(std::size_t, std::size_t);
void* __real_realloc(void*, std::size_t);
void __real_free(void*);

void* __wrap_malloc(std::size_t n) {
    note(n);
    return __real_malloc(n);
}
void* __wrap_calloc(std::size_t k, std::size_t n) {
    note(k * n);
    return __real_calloc(k, n);
}
void* __wrap_realloc(void* p, std::size_t n) {
    note(n);
    return __real_realloc(p, n);
}
void __wrap_free(void* p) { __real_free(p); }
}

// operator new may live in a shared libstdc++ whose malloc calls the wrap cannot see; count here.
void* operator new(std::size_t n) {
    note(n);
    if (void* p = __real_malloc(n ? n : 1)) return p;
    std::abort();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
    note(n);
    const std::size_t align = static_cast<std::size_t>(a);
    void* raw = __real_malloc(n + align + sizeof(void*));
    if (!raw) std::abort();
    auto addr = (reinterpret_cast<std::size_t>(raw) + sizeof(void*) + align - 1) & ~(align - 1);
    reinterpret_cast<void**>(addr)[-1] = raw;  // the real block, for delete
    return reinterpret_cast<void*>(addr);
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { __real_free(p); }
void operator delete[](void* p) noexcept { __real_free(p); }
void operator delete(void* p, std::size_t) noexcept { __real_free(p); }
void operator delete[](void* p, std::size_t) noexcept { __real_free(p); }
void operator delete(void* p, std::align_val_t) noexcept {
    if (p) __real_free(reinterpret_cast<void**>(p)[-1]);
}
void operator delete[](void* p, std::align_val_t a) noexcept { operator delete(p, a); }
void operator delete(void* p, std::size_t, std::align_val_t a) noexcept { operator delete(p, a); }
void operator delete[](void* p, std::size_t, std::align_val_t a) noexcept { operator delete(p, a); }
