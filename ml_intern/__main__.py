from ml_intern.cli import main

main()
