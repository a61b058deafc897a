"""Where the kit meets a course's tools: course folders, Gradescope, students'
repositories. (The modules users' own files name stay at the top: `grader.inline`,
`grader.nbgrader_support`, `grader.check_api`.)"""
