//! Measures how many 512-bit fused multiply-adds one x86_64 core issues per
//! cycle, to tell a core with one 512-bit FMA unit from one with two.
//!
//! The core clock comes from a chain of dependent integer additions, one per
//! cycle. The FMA rate comes from twelve independent chains of `vfmadd231ps` on
//! zmm registers, which is enough to hide the four-cycle latency on either kind
//! of core. Run it on an idle machine: both rates are wall-clock rates.
//!
//! `cargo run --release --example fma_ports`

#[cfg(target_arch = "x86_64")]
fn main() {
    use std::arch::asm;
    use std::time::Instant;

    if !std::arch::is_x86_feature_detected!("avx512f") {
        eprintln!("fma_ports: this CPU has no AVX-512; nothing to measure");
        std::process::exit(1);
    }
    const ITERATIONS: u64 = 100_000_000;

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
            n = inout(reg) ITERATIONS => _,
            options(nomem, nostack),
        );
    }
    let clock_hz = (8 * ITERATIONS) as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    // SAFETY: AVX-512 support was checked at the start.
    unsafe { fma_chains(ITERATIONS) };
    let fma_per_second = (12 * ITERATIONS) as f64 / started.elapsed().as_secs_f64();

    println!("core clock      {:.2} GHz (dependent integer adds)", clock_hz / 1e9);
    println!("512-bit FMA     {:.2} G/s", fma_per_second / 1e9);
    println!("FMA per cycle   {:.2} (one unit: at most 1; two units: up to 2)", fma_per_second / clock_hz);
}

/// Runs twelve independent chains of `iterations` 512-bit FMAs each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_chains(iterations: u64) {
    // SAFETY: the loop touches only the registers it declares.
    unsafe {
        std::arch::asm!(
            "vxorps xmm0, xmm0, xmm0",
            "2:",
            "vfmadd231ps zmm1, zmm0, zmm0", "vfmadd231ps zmm2, zmm0, zmm0",
            "vfmadd231ps zmm3, zmm0, zmm0", "vfmadd231ps zmm4, zmm0, zmm0",
            "vfmadd231ps zmm5, zmm0, zmm0", "vfmadd231ps zmm6, zmm0, zmm0",
            "vfmadd231ps zmm7, zmm0, zmm0", "vfmadd231ps zmm8, zmm0, zmm0",
            "vfmadd231ps zmm9, zmm0, zmm0", "vfmadd231ps zmm10, zmm0, zmm0",
            "vfmadd231ps zmm11, zmm0, zmm0", "vfmadd231ps zmm12, zmm0, zmm0",
            "sub {n}, 1",
            "jnz 2b",
            "vzeroupper",
            n = inout(reg) iterations => _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _,
            out("zmm5") _, out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _,
            out("zmm10") _, out("zmm11") _, out("zmm12") _,
            options(nomem, nostack),
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    eprintln!("fma_ports: measures x86_64 cores only");
    std::process::exit(1);
}
