//! Tell `stress` the optimisation level it was built with, so that an
//! unoptimised build can say so before it runs for an hour.
fn main() {
    let level = std::env::var("OPT_LEVEL").unwrap_or_default();
    println!("cargo:rustc-env=STRESS_OPT_LEVEL={level}");
    println!("cargo:rerun-if-env-changed=OPT_LEVEL");
}
