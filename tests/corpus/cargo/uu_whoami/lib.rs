// Empty: this package only pins uu_whoami for the corpus (see Cargo.toml).
