//! The code that runs inside the re-executed `berth` binary (see the crate docs).

/// Entry point for `berth __container-init`. Never returns.
pub fn main() -> ! {
    todo!()
}
