//! Pulling a base image.
