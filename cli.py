"""Run the monthlydocs command without installing it: `python cli.py --help`."""

from monthlydocs.cli import main

if __name__ == "__main__":
    main()
