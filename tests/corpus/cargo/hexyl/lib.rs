// Empty: this package only pins hexyl for the corpus (see Cargo.toml).
