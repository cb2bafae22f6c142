// Empty: this package only pins uu_date for the corpus (see Cargo.toml).
