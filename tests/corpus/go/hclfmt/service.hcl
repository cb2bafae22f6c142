service "web" {
      port=8080
  tags=["a","b"]
}
