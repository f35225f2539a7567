"""python -m zonedev"""
from .cli import main

main(prog_name="zonedev")
