import logging

logger = logging.getLogger("myscript")


def init():
    print("Initializing")
    print("two\nlines")
    logging.basicConfig(level=logging.INFO)
    logger.info("model loaded")


def run(data):
    print("scoring", data)
    logger.warning("a warning from run")
    return "ok"
