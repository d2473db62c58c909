// The roofline's two numbers for this machine, measured in the same run as the engines: its peak
// float multiply-add rate, and the bandwidth of reading a buffer of each size the weights take,
// warm (back to back, from the caches) and cold (the caches evicted first). One JSON line.
// usage: calibrate BYTES...
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

typedef float Lanes __attribute__((vector_size(32)));
using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Eight independent chains of vector multiply-adds: the issue rate, not the latency.
double peakMacsPerSecond() {
    constexpr int kChains = 12;  // FMA latency x issue width, with room
    Lanes acc[kChains] = {}, x, y;
    for (int k = 0; k < 8; ++k) x[k] = 1.0f + 1e-7f * float(k), y[k] = 0.999999f;
    const long iterations = 10000000;
    std::vector<double> rates;
    for (int r = 0; r < 5; ++r) {
        const auto t0 = Clock::now();
        for (long i = 0; i < iterations; ++i)
            for (auto& a : acc) a = a * y + x;
        const auto t1 = Clock::now();
        rates.push_back(double(iterations) * kChains * 8 / seconds(t0, t1));
    }
    float sink = 0;
    for (auto& a : acc) sink += a[0];
    std::fprintf(stderr, "%g\n", double(sink));  // keep the loop
    return std::max(rates[0], median(rates));
}

float readAll(const float* data, std::size_t n) {
    Lanes s[8] = {};  // eight chains: bound by the loads, not the adds' latency
    for (std::size_t i = 0; i + 64 <= n; i += 64)
        for (int k = 0; k < 8; ++k) {
            Lanes v;
            std::memcpy(&v, data + i + 8 * k, sizeof v);
            s[k] += v;
        }
    Lanes t = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    return t[0] + t[7];
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t evictBytes = std::size_t(128) << 20;
    std::vector<char> evict(evictBytes, 1);
    std::printf("{\"peak_macs_per_s\":%.6g,\"bandwidth\":[", peakMacsPerSecond());
    for (int a = 1; a < argc; ++a) {
        const std::size_t bytes = std::strtoull(argv[a], nullptr, 10);
        std::vector<float> data(bytes / sizeof(float), 1.0f);
        std::vector<double> warm, cold;
        float sink = 0;
        for (int r = 0; r < 30; ++r) {
            auto t0 = Clock::now();
            sink += readAll(data.data(), data.size());
            warm.push_back(seconds(t0, Clock::now()));
        }
        for (int r = 0; r < 10; ++r) {
            for (std::size_t i = 0; i < evictBytes; i += 64) ++evict[i];
            auto t0 = Clock::now();
            sink += readAll(data.data(), data.size());
            cold.push_back(seconds(t0, Clock::now()));
        }
        std::printf("%s{\"bytes\":%zu,\"warm_bytes_per_s\":%.6g,\"cold_bytes_per_s\":%.6g,\"sink\":%g}",
                    a > 1 ? "," : "", bytes, double(bytes) / median(warm), double(bytes) / median(cold),
                    double(sink));
    }
    std::printf("]}\n");
    return 0;
}
