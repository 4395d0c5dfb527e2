app_name = "staff"

# The staff SLA dashboard (issue 6).
urlpatterns: list = []
