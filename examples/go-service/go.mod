module example.com/profile-gate/go-service

go 1.19
