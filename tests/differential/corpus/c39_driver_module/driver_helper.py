def answer(data):
    return {"helped": data}
