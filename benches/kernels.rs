//! Criterion benchmarks of each kernel family on this CPU: lαβ statistics and
//! transfer on a 768×512 frame (and both together with the kernels in use), the
//! int8 dot product, the LRIS search over 16,000 embeddings and the GRIS medoid.
//!
//! Run with `cargo bench --bench kernels`; `THROATSEG_SIMD` picks the family
//! used by the search and the medoid.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use throatseg::colour::{self, kernels_for, ColourSpace, LabStats, PixelFilter, Transfer, HISTOGRAM_BINS};
use throatseg::cpu;
use throatseg::references::kernels::dot_kernels_for;
use throatseg::references::{gris_medoid, nearest};

/// Deterministic xorshift64 values, so every run times the same data.
struct Values(u64);

impl Values {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn byte_in(&mut self, low: u8, high: u8) -> u8 {
        // In u64: high − low + 1 is 256 for the full byte range.
        low + ((self.next() >> 40) % (high as u64 - low as u64 + 1)) as u8
    }

    fn code(&mut self) -> i8 {
        (((self.next() >> 40) % 255) as i32 - 127) as i8
    }
}

/// Generates a reddish mid-tone frame of 768×512 pixels with some dark and bright pixels.
fn frame() -> Vec<u8> {
    let mut values = Values(7);
    (0..768 * 512).flat_map(|_| [values.byte_in(5, 255), values.byte_in(0, 200), values.byte_in(0, 190)]).collect()
}

fn colour(c: &mut Criterion) {
    let rgb = frame();
    let from = LabStats { mean: [4.1, -0.05, 0.02], std: [0.12, 0.03, 0.015] };
    let to = LabStats { mean: [4.3, -0.02, 0.05], std: [0.2, 0.05, 0.01] };
    let transfer = Transfer::new(&from, &to);
    let mut out = vec![0u8; rgb.len()];

    let mut group = c.benchmark_group("colour_768x512");
    group.throughput(Throughput::Elements((rgb.len() / 3) as u64));
    for family in cpu::available() {
        let Some(kernels) = kernels_for(family) else { continue };
        group.bench_function(BenchmarkId::new("lab_sums", kernels.name), |b| {
            b.iter(|| (kernels.lab_sums)(black_box(&rgb), PixelFilter::default()))
        });
        group.bench_function(BenchmarkId::new("transfer", kernels.name), |b| {
            b.iter(|| (kernels.transfer)(black_box(&rgb), &mut out, &transfer))
        });
    }
    // Statistics and one transfer of the same frame with the kernels in use,
    // without and with the statistics pass's log2-LMS kept for the transfer.
    let active = colour::kernels().name;
    let filter = PixelFilter::default();
    group.bench_function(BenchmarkId::new("stats_then_transfer", active), |b| {
        b.iter(|| colour::transfer(black_box(&rgb), &mut out, &colour::lab_stats(&rgb, filter), &to))
    });
    group.bench_function(BenchmarkId::new("analyse_then_transfer", active), |b| {
        b.iter(|| ColourSpace::LAlphaBeta.analyse(black_box(&rgb), filter).transfer_to(&mut out, &to))
    });
    group.finish();
}

fn search(c: &mut Criterion) {
    const DIMS: usize = 1280;
    const ROWS: usize = 16_000;
    let mut values = Values(11);
    let rows: Vec<i8> = (0..ROWS * DIMS).map(|_| values.code()).collect();
    let scales = vec![1.0 / 127.0 / (DIMS as f32).sqrt(); ROWS];
    let query: Vec<f32> = (0..DIMS).map(|_| values.code() as f32 / 127.0).collect();

    let mut group = c.benchmark_group("int8");
    group.throughput(Throughput::Elements(DIMS as u64));
    // Families can share dot kernels (AVX-512 uses the AVX2 ones); time each once.
    let mut timed = Vec::new();
    for family in cpu::available() {
        for kernels in dot_kernels_for(family) {
            if timed.contains(&kernels.name) {
                continue;
            }
            timed.push(kernels.name);
            group.bench_function(BenchmarkId::new("dot_1280", kernels.name), |b| {
                b.iter(|| (kernels.dot_i8)(black_box(&rows[..DIMS]), black_box(&rows[DIMS..2 * DIMS])))
            });
        }
    }
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function(BenchmarkId::new("lris_16000", cpu::active().name()), |b| {
        b.iter(|| nearest(black_box(&rows), &scales, DIMS, black_box(&query)))
    });
    group.finish();
}

fn medoid(c: &mut Criterion) {
    const COUNT: usize = 2000;
    let mut values = Values(13);
    let mut histograms = Vec::with_capacity(COUNT * HISTOGRAM_BINS);
    for _ in 0..COUNT {
        let row: Vec<f32> = (0..HISTOGRAM_BINS).map(|_| (values.byte_in(0, 255).saturating_sub(200)) as f32).collect();
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1.0);
        histograms.extend(row.iter().map(|v| v / norm));
    }

    let mut group = c.benchmark_group("gris");
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("medoid_2000", cpu::active().name()), |b| {
        b.iter(|| gris_medoid(black_box(&histograms), HISTOGRAM_BINS, |_| {}))
    });
    group.finish();
}

criterion_group!(benches, colour, search, medoid);
criterion_main!(benches);
