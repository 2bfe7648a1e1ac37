from mmsgate.cli import main

main()
