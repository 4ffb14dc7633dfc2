from mdeberta.cli import main

main()
