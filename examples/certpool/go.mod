module example.com/certpool

go 1.21
