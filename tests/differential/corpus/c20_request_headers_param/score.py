def init():
    pass


def run(data, request_headers):
    return {"data": data, "headers": sorted(k for k in request_headers if k.lower() != "user-agent"),
            "test": request_headers.get("Test-Header")}
