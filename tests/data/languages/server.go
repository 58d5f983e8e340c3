package main

import (
	"fmt"
	"net/http"
)

const Port = 8080

type Server struct {
	mux *http.ServeMux
}

type Store interface {
	Get(key string) string
}

func (s *Server) Start() error {
	fmt.Println("starting")
	return http.ListenAndServe(":8080", s.mux)
}

func main() {
	new(Server).Start()
}
