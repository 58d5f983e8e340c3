package app;

import java.util.List;

public class Server {
    static final int PORT = 8080;

    public Server() {}

    public void start(List<String> args) {
        System.out.println(args.size());
    }
}

interface Handler {
    void handle(String request);
}
