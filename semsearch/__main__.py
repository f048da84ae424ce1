"""`python -m semsearch`: the `semsearch` command."""

from .launch import main

if __name__ == "__main__":
    main()
