# The naive approach from the article: one stage on the full node:20 image.
# The Node.js major (20, the article's): `make bench NODE=24` builds on Node 24.
ARG NODE=20
FROM node:${NODE}
WORKDIR /app
COPY package*.json ./
RUN npm install
COPY . .
RUN npm run build
EXPOSE 3000
CMD ["node", "dist/index.js"]
