from medknn.cli import main

main()
