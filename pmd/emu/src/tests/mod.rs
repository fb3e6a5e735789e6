//! Device tests through the test-only driver.

mod bringup;
