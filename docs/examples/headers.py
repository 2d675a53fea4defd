# A run() parameter named request_headers receives the request's headers as a dict (Title-Case names).
def init():
    pass


def run(raw_data, request_headers):
    return {"tenant": request_headers.get("X-Tenant"), "body": raw_data}
