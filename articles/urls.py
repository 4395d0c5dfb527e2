app_name = "articles"

# Filled by issue 5 (list, article page, feeds).
urlpatterns: list = []
