def init():
    pass


def run(data):
    values = data["values"]
    return {"total": sum(values)}
