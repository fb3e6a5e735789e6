//! The GDMA control plane (hardware channel). Written by the helper session.
