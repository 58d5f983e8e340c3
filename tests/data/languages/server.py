import os
from .config import Config

LIMIT = 10


class Server:
    def handle(self, request):
        return os.path.join(request.path)
