//! Integration tests of the Dockerfile builder. A custom `main` (no libtest harness) because this test binary
//! is also the build container's init program: the builder re-executes it with `container::INIT_ARG`.

fn main() {
    if std::env::args().nth(1).as_deref() == Some(container::INIT_ARG) {
        container::init::main();
    }
}
