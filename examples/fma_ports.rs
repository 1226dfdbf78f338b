//! Measures what the AVX-512 colour kernels can issue per cycle on one x86_64
//! core: how many 512-bit fused multiply-adds, and which of the kernels' other
//! instructions run beside the FMAs rather than on the same units.
//!
//! The core clock comes from a chain of dependent integer additions, one per
//! cycle. The FMA rate comes from eight independent chains of `vfmadd231ps` on
//! zmm registers, which hides the four-cycle latency on the cores measured so
//! far (Ice Lake server, Zen 4). Then, for each other instruction, one loop runs
//! four independent copies of it alone, and one runs them beside the eight FMA
//! chains. If the second loop takes as long as the FMAs alone, the instruction
//! issues on other units. If it takes the sum of both, it shares the FMA units.
//! Run it on an idle machine: all rates are wall-clock rates.
//!
//! `cargo run --release --example fma_ports`

#[cfg(target_arch = "x86_64")]
mod probe {
    use std::arch::asm;
    use std::time::Instant;

    pub const ITERATIONS: u64 = 20_000_000;

    /// Times `ITERATIONS` runs of a loop body given as assembly lines. The
    /// vector registers start at zero, so that no special value slows an
    /// instruction down. The bodies read zmm30 and zmm31.
    macro_rules! seconds_for {
        ($($line:literal),* $(,)?) => {{
            let started = Instant::now();
            // SAFETY: the loop touches only the registers it declares, and
            // `main` checked the CPU features of every instruction first.
            unsafe {
                asm!(
                    "vpxord zmm0, zmm0, zmm0", "vmovdqa64 zmm1, zmm0", "vmovdqa64 zmm2, zmm0",
                    "vmovdqa64 zmm3, zmm0", "vmovdqa64 zmm4, zmm0", "vmovdqa64 zmm5, zmm0",
                    "vmovdqa64 zmm6, zmm0", "vmovdqa64 zmm7, zmm0", "vmovdqa64 zmm16, zmm0",
                    "vmovdqa64 zmm17, zmm0", "vmovdqa64 zmm18, zmm0", "vmovdqa64 zmm19, zmm0",
                    "vmovdqa64 zmm30, zmm0", "vmovdqa64 zmm31, zmm0",
                    "2:",
                    $($line,)*
                    "sub {n}, 1",
                    "jnz 2b",
                    "vzeroupper",
                    n = inout(reg) ITERATIONS => _,
                    out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
                    out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
                    out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
                    out("zmm30") _, out("zmm31") _,
                    options(nomem, nostack),
                );
            }
            started.elapsed().as_secs_f64()
        }};
    }

    /// Eight independent FMA chains followed by the given lines (four copies of
    /// one instruction, writing zmm16 to zmm19).
    macro_rules! beside_fmas {
        ($($line:literal),*) => {
            seconds_for!(
                "vfmadd231ps zmm0, zmm30, zmm31", "vfmadd231ps zmm1, zmm30, zmm31",
                "vfmadd231ps zmm2, zmm30, zmm31", "vfmadd231ps zmm3, zmm30, zmm31",
                "vfmadd231ps zmm4, zmm30, zmm31", "vfmadd231ps zmm5, zmm30, zmm31",
                "vfmadd231ps zmm6, zmm30, zmm31", "vfmadd231ps zmm7, zmm30, zmm31",
                $($line),*
            )
        };
    }

    /// One instruction measured alone and beside the FMAs: the seconds of
    /// four copies alone and of four copies beside eight FMAs.
    macro_rules! measure {
        ($name:literal, $a:literal, $b:literal, $c:literal, $d:literal) => {
            ($name, seconds_for!($a, $b, $c, $d), beside_fmas!($a, $b, $c, $d))
        };
    }

    pub fn clock_hz() -> f64 {
        let started = Instant::now();
        // SAFETY: the loop touches only the registers it declares.
        unsafe {
            asm!(
                "2:",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "sub {n}, 1",
                "jnz 2b",
                x = inout(reg) 0u64 => _,
                n = inout(reg) 5 * ITERATIONS => _,
                options(nomem, nostack),
            );
        }
        (8 * 5 * ITERATIONS) as f64 / started.elapsed().as_secs_f64()
    }

    /// Seconds of the eight FMA chains alone.
    pub fn fmas() -> f64 {
        beside_fmas!()
    }

    /// Name, seconds alone and seconds beside the FMAs, per instruction.
    pub fn others() -> Vec<(&'static str, f64, f64)> {
        vec![
            measure!("vaddps", "vaddps zmm16, zmm30, zmm31", "vaddps zmm17, zmm30, zmm31", "vaddps zmm18, zmm30, zmm31", "vaddps zmm19, zmm30, zmm31"),
            measure!("vmulps", "vmulps zmm16, zmm30, zmm31", "vmulps zmm17, zmm30, zmm31", "vmulps zmm18, zmm30, zmm31", "vmulps zmm19, zmm30, zmm31"),
            measure!("vmaxps", "vmaxps zmm16, zmm30, zmm31", "vmaxps zmm17, zmm30, zmm31", "vmaxps zmm18, zmm30, zmm31", "vmaxps zmm19, zmm30, zmm31"),
            measure!("vgetexpps", "vgetexpps zmm16, zmm30", "vgetexpps zmm17, zmm30", "vgetexpps zmm18, zmm30", "vgetexpps zmm19, zmm30"),
            measure!("vgetmantps", "vgetmantps zmm16, zmm30, 0", "vgetmantps zmm17, zmm30, 0", "vgetmantps zmm18, zmm30, 0", "vgetmantps zmm19, zmm30, 0"),
            measure!("vrangeps", "vrangeps zmm16, zmm30, zmm31, 2", "vrangeps zmm17, zmm30, zmm31, 2", "vrangeps zmm18, zmm30, zmm31, 2", "vrangeps zmm19, zmm30, zmm31, 2"),
            measure!("vreduceps", "vreduceps zmm16, zmm30, 9", "vreduceps zmm17, zmm30, 9", "vreduceps zmm18, zmm30, 9", "vreduceps zmm19, zmm30, 9"),
            measure!("vscalefps", "vscalefps zmm16, zmm30, zmm31", "vscalefps zmm17, zmm30, zmm31", "vscalefps zmm18, zmm30, zmm31", "vscalefps zmm19, zmm30, zmm31"),
            measure!("vcvtdq2ps", "vcvtdq2ps zmm16, zmm30", "vcvtdq2ps zmm17, zmm30", "vcvtdq2ps zmm18, zmm30", "vcvtdq2ps zmm19, zmm30"),
            measure!("vcvtps2dq", "vcvtps2dq zmm16, zmm30", "vcvtps2dq zmm17, zmm30", "vcvtps2dq zmm18, zmm30", "vcvtps2dq zmm19, zmm30"),
            measure!("vpmovzxbd", "vpmovzxbd zmm16, xmm30", "vpmovzxbd zmm17, xmm30", "vpmovzxbd zmm18, xmm30", "vpmovzxbd zmm19, xmm30"),
            measure!("vextracti32x4", "vextracti32x4 xmm16, zmm30, 1", "vextracti32x4 xmm17, zmm30, 2", "vextracti32x4 xmm18, zmm30, 1", "vextracti32x4 xmm19, zmm30, 2"),
            measure!("vpermb", "vpermb zmm16, zmm30, zmm31", "vpermb zmm17, zmm30, zmm31", "vpermb zmm18, zmm30, zmm31", "vpermb zmm19, zmm30, zmm31"),
            measure!("vpermps", "vpermps zmm16, zmm30, zmm31", "vpermps zmm17, zmm30, zmm31", "vpermps zmm18, zmm30, zmm31", "vpermps zmm19, zmm30, zmm31"),
            measure!("vpermt2ps", "vpermt2ps zmm16, zmm30, zmm31", "vpermt2ps zmm17, zmm30, zmm31", "vpermt2ps zmm18, zmm30, zmm31", "vpermt2ps zmm19, zmm30, zmm31"),
            measure!("vpackusdw", "vpackusdw zmm16, zmm30, zmm31", "vpackusdw zmm17, zmm30, zmm31", "vpackusdw zmm18, zmm30, zmm31", "vpackusdw zmm19, zmm30, zmm31"),
            measure!("vpsrld", "vpsrld zmm16, zmm30, 3", "vpsrld zmm17, zmm30, 3", "vpsrld zmm18, zmm30, 3", "vpsrld zmm19, zmm30, 3"),
            measure!("vpdpwssd", "vpdpwssd zmm16, zmm30, zmm31", "vpdpwssd zmm17, zmm30, zmm31", "vpdpwssd zmm18, zmm30, zmm31", "vpdpwssd zmm19, zmm30, zmm31"),
        ]
    }
}

#[cfg(target_arch = "x86_64")]
fn main() {
    use std::arch::is_x86_feature_detected as has;
    let features = [
        ("avx512f", has!("avx512f")),
        ("avx512bw", has!("avx512bw")),
        ("avx512dq", has!("avx512dq")),
        ("avx512vbmi", has!("avx512vbmi")),
        ("avx512vnni", has!("avx512vnni")),
    ];
    let missing: Vec<_> = features.iter().filter(|(_, present)| !present).map(|(name, _)| name).collect();
    if !missing.is_empty() {
        eprintln!("fma_ports: this CPU lacks {missing:?}; nothing to measure");
        std::process::exit(1);
    }
    let clock_hz = probe::clock_hz();
    let cycles = |seconds: f64| seconds * clock_hz / probe::ITERATIONS as f64;
    let fma_cycles = cycles(probe::fmas());
    println!("core clock      {:.2} GHz (dependent integer adds)", clock_hz / 1e9);
    println!("FMA per cycle   {:.2} (one 512-bit unit: at most 1; two: up to 2)", 8.0 / fma_cycles);
    println!();
    println!("{:<14} {:>9} {:>16} {:>12}", "4 of", "per cycle", "beside 8 FMAs", "verdict");
    for (name, alone, beside) in probe::others() {
        let (alone, beside) = (cycles(alone), cycles(beside));
        // Beside units: the loop takes the longer of the two loops alone.
        // Shared units: it takes their sum. Halfway between decides.
        let verdict = if beside < (fma_cycles.max(alone) + fma_cycles + alone) / 2.0 { "beside" } else { "shares FMA" };
        println!("{name:<14} {:>9.2} {:>12.2} cyc {verdict:>12}", 4.0 / alone, beside);
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    eprintln!("fma_ports: measures x86_64 cores only");
    std::process::exit(1);
}
